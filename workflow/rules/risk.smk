# Stage 7: risk. Return levels of the region's gauges and sea-level change per climate
# experiment, the inputs of the climate scenario maps (predict reads both).
rule return_levels:
    input:
        tide=lambda wildcards: ingested(wildcards.region, "tide"),
    output:
        table=f"{RESULTS}/{{region}}/risk/return_levels.csv",
        plot=f"{RESULTS}/{{region}}/risk/return_levels.png",
        storm=f"{RESULTS}/{{region}}/risk/design_storm.csv",
    params:
        config=EFFECTIVE_CONFIG,
        settings=lambda wildcards: settings_hash([config["risk"]["extremes"],
                                                  config["align"]["gauge_history_hours"]]),
        tide=f"{RESULTS}/{{region}}/ingest/tide/tide.nc",
        out=lambda wildcards, output: os.path.dirname(output.table),
    resources:
        mem_mb=1000,
        runtime=30,
    log:
        f"{RESULTS}/logs/{{region}}/return_levels.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/return_levels.tsv"
    message:
        "Fitting tide-gauge extremes of {wildcards.region}"
    shell:
        "floodkd risk extremes --config {params.config:q} --region {wildcards.region:q} "
        "--tide {params.tide:q} --out {params.out:q} --threads {threads} --log {log:q}"


rule sea_level_change:
    input:
        gcm=sea_level_source,
    output:
        table=f"{RESULTS}/{{region}}/risk/sea_level_change.csv",
    params:
        config=EFFECTIVE_CONFIG,
        settings=climate_settings,
        gcm=lambda wildcards: "" if sea_level_table() else
        f"{RESULTS}/{wildcards.region}/ingest/gcm/gcm.nc",
        out=lambda wildcards, output: os.path.dirname(output.table),
    resources:
        mem_mb=1000,
        runtime=30,
    log:
        f"{RESULTS}/logs/{{region}}/sea_level_change.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/sea_level_change.tsv"
    message:
        "Sea-level change per climate experiment for {wildcards.region}"
    shell:
        "floodkd risk climate --config {params.config:q} --region {wildcards.region:q} "
        "--gcm {params.gcm:q} --out {params.out:q} --threads {threads} --log {log:q}"
