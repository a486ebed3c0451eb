# Stage 2: read each modality's real-world format, validate, normalise.
rule ingest:
    input:
        modality_inputs,
    output:
        directory(f"{RESULTS}/{{region}}/ingest/{{modality}}"),
    params:
        config=CONFIG_FILE,
    log:
        f"{RESULTS}/logs/{{region}}/ingest_{{modality}}.log",
    message:
        "Ingesting {wildcards.modality} of {wildcards.region}"
    shell:
        "floodkd ingest {wildcards.modality} --config {params.config} "
        "--region {wildcards.region} --out {output} > {log} 2>&1"
