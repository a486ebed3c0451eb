# Stage 5: distil the teacher into the student ensemble of each target region.
rule distill:
    input:
        cube=f"{RESULTS}/{{region}}/cube.zarr",
        tiles=f"{RESULTS}/{{region}}/tiles.parquet",
        teacher=rules.train_teacher.output.weights,
    output:
        meta=f"{RESULTS}/{{region}}/student/student.json",
    params:
        config=CONFIG_FILE,
        teacher=f"{RESULTS}/teacher",
        out=f"{RESULTS}/{{region}}/student",
    threads: 2
    log:
        f"{RESULTS}/logs/{{region}}/distill.log",
    message:
        "Distilling the teacher into the student ensemble for {wildcards.region}"
    shell:
        "floodkd distill --config {params.config} --region {wildcards.region} "
        "--teacher {params.teacher} --out {params.out} > {log} 2>&1"
