# Stage 9: a target region's maps ready to open: a QGIS project (every scenario's layers
# styled and grouped, with the region outline, the tide gauges, the protected areas and the
# hand labels, all by relative path) and the STAC Collection of the maps.
rule catalogue:
    input:
        maps=lambda wildcards: every_scenario_map(wildcards.region),
        # the ingest folders the context group shows, through their manifests
        ingest=lambda wildcards: [ingested(wildcards.region, modality)
                                  for modality in ("labels", "tide", "defences")
                                  if modality in config["regions"][wildcards.region]["inputs"]],
        outline=lambda wildcards: config["regions"][wildcards.region].get("area_file", []),
        reference_water=rules.reference_water.output.reference,
        # not read: see cube_manifest
        cube=cube_manifest,
    output:
        project=f"{RESULTS}/{{region}}/{{region}}.qgs",
        context=directory(f"{RESULTS}/{{region}}/context"),
        collection=f"{RESULTS}/{{region}}/maps/collection.json",
    params:
        config=EFFECTIVE_CONFIG,
        settings=lambda wildcards: settings_hash([
            region_place(wildcards.region), config["grid"], list(config["predict"]["scenarios"]),
            region_model(wildcards.region), config["regions"][wildcards.region].get("synthetic")]),
        maps=f"{RESULTS}/{{region}}/maps",
        # the ingested labels, gauges and defences as CLI flags, where the region has them
        optional=lambda wildcards: [
            part for modality in ("labels", "tide", "defences")
            if modality in config["regions"][wildcards.region]["inputs"]
            for part in (f"--{modality}", f"{RESULTS}/{wildcards.region}/ingest/{modality}")],
        out=lambda wildcards, output: os.path.dirname(output.project),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        f"{RESULTS}/logs/{{region}}/catalogue.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/catalogue.tsv"
    message:
        "Writing the QGIS project and STAC Collection of {wildcards.region}"
    shell:
        "floodkd catalogue --config {params.config:q} --region {wildcards.region:q} "
        "--maps {params.maps:q} {params.optional:q} --reference-water {input.reference_water:q} "
        "--out {params.out:q} --threads {threads} --log {log:q}"
