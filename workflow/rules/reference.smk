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


# Stage 4c: the level at which each region's radar archive sees each pixel flood, a static
# layer for the student: from the teacher's map of every pass before a target's held-out
# period (all passes of a source region, which has none). Like teacher_passes it takes the
# period from the config, not holdout.json: naming that checkpoint would rerun it, and all
# after it, after an identical rewrite of the cube.
rule waterline:
    input:
        cube=cube_manifest,
        teacher=rules.train_teacher.output.weights,
        # unread, as for train_teacher: naming each target's align checkpoint makes Snakemake
        # re-evaluate this job after an identical rewrite of a target's cube (it would keep
        # the teacher's stale "updated input" reason, and rerun distill after it)
        target_cubes=lambda wildcards: [ancient(aligned(target, "manifest"))
                                        for target in TARGETS],
    output:
        layer=f"{RESULTS}/{{region}}/waterline.tif",
    params:
        config=EFFECTIVE_CONFIG,
        settings=waterline_settings,
        teacher=lambda wildcards, input: os.path.dirname(input.teacher),
        cube=f"{RESULTS}/{{region}}/cube.zarr",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        f"{RESULTS}/logs/{{region}}/waterline.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/waterline.tsv"
    message:
        "Reading the waterline of {wildcards.region} from its radar archive"
    shell:
        "floodkd waterline --config {params.config:q} --region {wildcards.region:q} "
        "--teacher {params.teacher:q} --cube {params.cube:q} "
        "--out {output.layer:q} --threads {threads} --log {log:q}"
