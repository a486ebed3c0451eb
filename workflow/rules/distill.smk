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
