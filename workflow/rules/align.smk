# Stage 3: every modality onto one region grid, as a chunked datacube and a tile index.
rule align:
    input:
        lambda wildcards: ingest_outputs(wildcards.region),
    output:
        cube=directory(f"{RESULTS}/{{region}}/cube.zarr"),
        tiles=f"{RESULTS}/{{region}}/tiles.parquet",
    params:
        config=CONFIG_FILE,
    threads: 2
    log:
        f"{RESULTS}/logs/{{region}}/align.log",
    message:
        "Aligning {wildcards.region} onto its region grid"
    shell:
        "floodkd align --config {params.config} --region {wildcards.region} "
        "--cube {output.cube} --tiles {output.tiles} --threads {threads} > {log} 2>&1"
