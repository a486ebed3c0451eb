# Stage 8: score the teacher, the students and the baselines against truth or held-out labels.
rule evaluate:
    input:
        cube=cube_manifest,
        tiles=lambda wildcards: aligned(wildcards.region, "tiles"),
        teacher=rules.train_teacher.output.weights,
        student=rules.distill.output.meta,
        truth=truth_files,
        reference_water=rules.reference_water.output.reference,
    output:
        metrics=f"{RESULTS}/{{region}}/eval/metrics.json",
        table=f"{RESULTS}/{{region}}/eval/metrics.md",
    params:
        config=EFFECTIVE_CONFIG,
        settings=evaluate_settings,
        teacher=lambda wildcards, input: os.path.dirname(input.teacher),
        student=lambda wildcards, input: os.path.dirname(input.student),
        out=lambda wildcards, output: os.path.dirname(output.metrics),
    # one core: a second thread saved 12% (demo: 30 -> 27 s), running beside the scenarios'
    # maps on two cores saves more
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        f"{RESULTS}/logs/{{region}}/evaluate.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/evaluate.tsv"
    message:
        "Evaluating models and baselines on {wildcards.region}"
    shell:
        "floodkd evaluate --config {params.config:q} --region {wildcards.region:q} "
        "--teacher {params.teacher:q} --student {params.student:q} "
        "--reference-water {input.reference_water:q} --out {params.out:q} "
        "--threads {threads} --log {log:q}"
