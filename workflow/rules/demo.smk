# Stage 1: the synthetic demo coast. `make run` writes it if missing; real users skip it.
rule demo:
    output:
        manifest=f"{config['demo']['out']}/manifest.json",
    params:
        out=config["demo"]["out"],
        seed=config["demo"]["seed"],
        size=config["demo"]["size"],
    log:
        f"{RESULTS}/logs/demo.log",
    message:
        "Writing the synthetic demo coast to {params.out}"
    shell:
        "floodkd demo --out {params.out} --seed {params.seed} --size {params.size} > {log} 2>&1"
