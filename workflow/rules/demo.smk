# Stage 1: the synthetic demo coast. `make run` writes it if missing; real users skip it.
rule demo:
    output:
        manifest=f"{config['demo']['out']}/manifest.json",
    params:
        out=lambda wildcards, output: os.path.dirname(output.manifest),
        seed=config["demo"]["seed"],
        size=config["demo"]["size"],
    resources:
        mem_mb=2000,
        runtime=30,
    log:
        f"{RESULTS}/logs/demo.log",
    benchmark:
        f"{BENCHMARKS}/demo.tsv"
    message:
        "Writing the synthetic demo coast to {params.out}"
    shell:
        "floodkd demo --out {params.out:q} --seed {params.seed:q} --size {params.size:q} "
        "--threads {threads} --log {log:q}"
