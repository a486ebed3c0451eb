# Stage 5: distil the teacher into the student ensemble of each target region.
rule distill:
    input:
        cube=f"{RESULTS}/{{region}}/cube.zarr",
        tiles=f"{RESULTS}/{{region}}/tiles.parquet",
        teacher=rules.train_teacher.output.weights,
        # the student also learns from the teacher on the source regions' passes
        source_cubes=expand(f"{RESULTS}/{{source}}/cube.zarr", source=SOURCES),
        source_tiles=expand(f"{RESULTS}/{{source}}/tiles.parquet", source=SOURCES),
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
