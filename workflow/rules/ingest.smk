# Stage 2: read each modality's real-world format, validate, normalise.
# A checkpoint, so align runs only if the manifest changed (see floodkd.manifest).
checkpoint ingest:
    input:
        modality_inputs,
    output:
        folder=directory(f"{RESULTS}/{{region}}/ingest/{{modality}}"),
        manifest=f"{RESULTS}/{{region}}/ingest/{{modality}}.manifest.json",
    params:
        config=EFFECTIVE_CONFIG,
        settings=ingest_settings,
    resources:
        mem_mb=1000,
        runtime=30,
    log:
        f"{RESULTS}/logs/{{region}}/ingest_{{modality}}.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/ingest_{{modality}}.tsv"
    message:
        "Ingesting {wildcards.modality} of {wildcards.region}"
    shell:
        "floodkd ingest {wildcards.modality:q} --config {params.config:q} "
        "--region {wildcards.region:q} --out {output.folder:q} --threads {threads} --log {log:q} "
        "&& floodkd manifest {output.folder:q} --out {output.manifest:q}"
