# Stage 8: the results of a target region as one standalone HTML page, and its pieces for
# `snakemake --report report.html` (each with a caption in workflow/report/).
rule report:
    input:
        maps=region_maps,
        metrics=f"{RESULTS}/{{region}}/eval/metrics.json",
        student=f"{RESULTS}/{{region}}/student/student.json",
        # return levels and the plan, where this workflow makes them
        extras=report_extras,
        # not read: see cube_manifest
        cube=cube_manifest,
    output:
        page=report(f"{RESULTS}/{{region}}/report/index.html", caption="../report/page.rst",
                    category="Region pages", labels={"region": "{region}"}),
        metrics=report(f"{RESULTS}/{{region}}/report/metrics.html",
                       caption="../report/metrics.rst", category="Evaluation",
                       labels={"region": "{region}", "figure": "metrics table"}),
        reliability=report(f"{RESULTS}/{{region}}/report/reliability.png",
                           caption="../report/reliability.rst", category="Evaluation",
                           labels={"region": "{region}", "figure": "reliability diagram"}),
        training=report(f"{RESULTS}/{{region}}/report/training_curves.png",
                        caption="../report/training.rst", category="Training",
                        labels={"region": "{region}"}),
        benchmarks=report(f"{RESULTS}/{{region}}/report/benchmarks.html",
                          caption="../report/benchmarks.rst", category="Benchmarks",
                          labels={"region": "{region}"}),
    params:
        config=EFFECTIVE_CONFIG,
        settings=report_settings,
        out=lambda wildcards, output: os.path.dirname(output.page),
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        f"{RESULTS}/logs/{{region}}/report.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/report.tsv"
    message:
        "Writing the report page of {wildcards.region}"
    shell:
        "floodkd report --config {params.config:q} --region {wildcards.region:q} "
        "--out {params.out:q} --threads {threads} --log {log:q}"
