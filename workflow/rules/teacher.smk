# Stage 4: the radar teacher, trained on the labelled tiles of the source regions.
rule train_teacher:
    input:
        cubes=expand(f"{RESULTS}/{{region}}/cube.zarr", region=SOURCES),
        tiles=expand(f"{RESULTS}/{{region}}/tiles.parquet", region=SOURCES),
    output:
        weights=f"{RESULTS}/teacher/teacher.safetensors",
        meta=f"{RESULTS}/teacher/teacher.json",
    params:
        config=CONFIG_FILE,
        out=f"{RESULTS}/teacher",
    threads: 2
    log:
        f"{RESULTS}/logs/train_teacher.log",
    message:
        "Training the radar teacher on {SOURCES}"
    shell:
        "floodkd train-teacher --config {params.config} --out {params.out} > {log} 2>&1"
