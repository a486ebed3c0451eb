# Stage 8: score the teacher, the students and the baselines against truth or held-out labels.
rule evaluate:
    input:
        cube=f"{RESULTS}/{{region}}/cube.zarr",
        tiles=f"{RESULTS}/{{region}}/tiles.parquet",
        teacher=rules.train_teacher.output.weights,
        student=rules.distill.output.meta,
        truth=truth_files,
    output:
        metrics=f"{RESULTS}/{{region}}/eval/metrics.json",
        table=f"{RESULTS}/{{region}}/eval/metrics.md",
    params:
        config=CONFIG_FILE,
        teacher=f"{RESULTS}/teacher",
        student=f"{RESULTS}/{{region}}/student",
        out=f"{RESULTS}/{{region}}/eval",
    threads: 2
    log:
        f"{RESULTS}/logs/{{region}}/evaluate.log",
    message:
        "Evaluating models and baselines on {wildcards.region}"
    shell:
        "floodkd evaluate --config {params.config} --region {wildcards.region} "
        "--teacher {params.teacher} --student {params.student} --out {params.out} > {log} 2>&1"
