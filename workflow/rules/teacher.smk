# Stage 4: the radar teacher, trained on the labelled tiles of the source regions.
rule train_teacher:
    input:
        cubes=lambda wildcards: [aligned(source, "manifest") for source in SOURCES],
        tiles=lambda wildcards: [aligned(source, "tiles") for source in SOURCES],
        # no pass of a target's held-out period reaches the teacher either
        holdouts=holdout_periods,
        # unread: naming each target's align checkpoint makes Snakemake re-evaluate the
        # teacher after an identical rewrite of a target's cube (it would keep a stale
        # "updated input" reason from the holdout job it then drops); ancient, so new
        # target data retrains the teacher only where its held-out period moves
        target_cubes=lambda wildcards: [ancient(aligned(target, "manifest"))
                                        for target in TARGETS],
    output:
        weights=f"{RESULTS}/teacher/teacher.safetensors",
        meta=f"{RESULTS}/teacher/teacher.json",
    params:
        config=EFFECTIVE_CONFIG,
        settings=teacher_settings,
        out=lambda wildcards, output: os.path.dirname(output.weights),
    threads: 4
    resources:
        mem_mb=8000,
        runtime=240,
    log:
        f"{RESULTS}/logs/train_teacher.log",
    benchmark:
        f"{BENCHMARKS}/train_teacher.tsv"
    message:
        "Training the radar teacher on {SOURCES}"
    shell:
        "floodkd train-teacher --config {params.config:q} --out {params.out:q} "
        "--holdout {input.holdouts:q} --threads {threads} --log {log:q}"
