# Stage 8a: the teacher's map of each radar pass evaluation scores, so that evaluate (and its
# reruns) never builds the ViT; it runs beside distillation.
rule teacher_passes:
    input:
        cube=cube_manifest,
        tiles=lambda wildcards: aligned(wildcards.region, "tiles"),
        teacher=rules.train_teacher.output.weights,
        truth=truth_files,
    output:
        passes=f"{RESULTS}/{{region}}/teacher_passes.tif",
    params:
        config=EFFECTIVE_CONFIG,
        settings=teacher_passes_settings,
        teacher=lambda wildcards, input: os.path.dirname(input.teacher),
    # first among the jobs ready with it: it and evaluate lead to the last job, and evaluate
    # can then run on one core beside the scenarios' maps instead of alone at the end
    priority: 1
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        f"{RESULTS}/logs/{{region}}/teacher_passes.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/teacher_passes.tsv"
    message:
        "Mapping the teacher on the radar passes {wildcards.region} is evaluated on"
    shell:
        "floodkd teacher-passes --config {params.config:q} --region {wildcards.region:q} "
        "--teacher {params.teacher:q} --out {output.passes:q} --threads {threads} "
        "--log {log:q}"


# Stage 8b: score the teacher, the students and the baselines against truth or held-out labels.
rule evaluate:
    input:
        cube=cube_manifest,
        tiles=lambda wildcards: aligned(wildcards.region, "tiles"),
        teacher_passes=rules.teacher_passes.output.passes,
        student=rules.distill.output.meta,
        truth=truth_files,
        reference_water=rules.reference_water.output.reference,
        # read beside the cube, as distill read it
        waterline=rules.waterline.output.layer,
    output:
        metrics=f"{RESULTS}/{{region}}/eval/metrics.json",
        table=f"{RESULTS}/{{region}}/eval/metrics.md",
    params:
        config=EFFECTIVE_CONFIG,
        settings=evaluate_settings,
        student=lambda wildcards, input: os.path.dirname(input.student),
        out=lambda wildcards, output: os.path.dirname(output.metrics),
    # one core: running beside the scenarios' maps on two cores saves more than a second
    # thread would (priority: started before them, as soon as distill is done)
    priority: 1
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
        "--teacher-passes {input.teacher_passes:q} --student {params.student:q} "
        "--reference-water {input.reference_water:q} --out {params.out:q} "
        "--threads {threads} --log {log:q}"
