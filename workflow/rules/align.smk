# Stage 3: every modality onto one region grid, as a chunked datacube and a tile index.
# A checkpoint: its consumers take the cube's manifest as input, and run only if the cube's
# content changed (see floodkd.manifest and README, "Reruns that do not waste work").
checkpoint align:
    input:
        ingest_manifests,
    output:
        cube=directory(f"{RESULTS}/{{region}}/cube.zarr"),
        manifest=f"{RESULTS}/{{region}}/cube.manifest.json",
        tiles=f"{RESULTS}/{{region}}/tiles.parquet",
    params:
        config=EFFECTIVE_CONFIG,
        settings=align_settings,
    threads: 4
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        f"{RESULTS}/logs/{{region}}/align.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/align.tsv"
    message:
        "Aligning {wildcards.region} onto its region grid"
    shell:
        "floodkd align --config {params.config:q} --region {wildcards.region:q} "
        "--cube {output.cube:q} --tiles {output.tiles:q} --threads {threads} --log {log:q} "
        "&& floodkd manifest {output.cube:q} --out {output.manifest:q}"
