# Stage 4b: the reference (permanent) water of each target region, kept apart from flood: water
# in nearly every radar pass as the teacher maps it, or the raster regions.<name>.reference_water.
rule reference_water:
    input:
        cube=cube_manifest,
        # the teacher, or the user's raster where the region names one
        source=reference_water_source,
    output:
        reference=f"{RESULTS}/{{region}}/reference_water.tif",
    params:
        config=EFFECTIVE_CONFIG,
        settings=reference_water_settings,
        teacher=f"{RESULTS}/teacher",
        cube=f"{RESULTS}/{{region}}/cube.zarr",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        f"{RESULTS}/logs/{{region}}/reference_water.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/reference_water.tsv"
    message:
        "Mapping the reference (permanent) water of {wildcards.region}"
    shell:
        "floodkd reference-water --config {params.config:q} --region {wildcards.region:q} "
        "--teacher {params.teacher:q} --cube {params.cube:q} --out {output.reference:q} "
        "--threads {threads} --log {log:q}"
