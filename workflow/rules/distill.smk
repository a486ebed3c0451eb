# Stage 4a: each target region's held-out period, which no training phase may see. The
# teacher reads only these small files, not the target's cube; a checkpoint like align, so
# new target data that holds out the same passes retrains no teacher.
checkpoint holdout:
    input:
        cube=cube_manifest,
        tiles=lambda wildcards: aligned(wildcards.region, "tiles"),
    output:
        period=f"{RESULTS}/{{region}}/holdout.json",
    params:
        config=EFFECTIVE_CONFIG,
        settings=holdout_settings,
    log:
        f"{RESULTS}/logs/{{region}}/holdout.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/holdout.tsv"
    message:
        "Fixing the held-out period of {wildcards.region}"
    shell:
        "floodkd holdout --config {params.config:q} --region {wildcards.region:q} "
        "--out {output.period:q} --threads 1 --log {log:q}"


# Stage 5: distil the teacher into the student ensemble of each target region.
rule distill:
    input:
        cube=cube_manifest,
        tiles=lambda wildcards: aligned(wildcards.region, "tiles"),
        teacher=rules.train_teacher.output.weights,
        # the student also learns from the teacher on the source regions' passes
        source_cubes=lambda wildcards: [aligned(source, "manifest") for source in SOURCES],
        source_tiles=lambda wildcards: [aligned(source, "tiles") for source in SOURCES],
        # read beside each region's cube: the levels at which its radar archive saw it flood
        waterlines=lambda wildcards: [f"{RESULTS}/{region}/waterline.tif"
                                      for region in [wildcards.region, *SOURCES]],
    output:
        meta=f"{RESULTS}/{{region}}/student/student.json",
    params:
        config=EFFECTIVE_CONFIG,
        settings=distill_settings,
        teacher=lambda wildcards, input: os.path.dirname(input.teacher),
        out=lambda wildcards, output: os.path.dirname(output.meta),
    threads: 4
    resources:
        mem_mb=8000,
        runtime=480,
    log:
        f"{RESULTS}/logs/{{region}}/distill.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/distill.tsv"
    message:
        "Distilling the teacher into the student ensemble for {wildcards.region}"
    shell:
        "floodkd distill --config {params.config:q} --region {wildcards.region:q} "
        "--teacher {params.teacher:q} --out {params.out:q} --threads {threads} --log {log:q}"
