# Stage 6: tiled inference over the whole region, streamed to Cloud-Optimized GeoTIFFs.
rule predict:
    input:
        cube=f"{RESULTS}/{{region}}/cube.zarr",
        model=map_model,
    output:
        probability=f"{RESULTS}/{{region}}/maps/flood_probability_{{scenario}}.tif",
        uncertainty=f"{RESULTS}/{{region}}/maps/flood_uncertainty_{{scenario}}.tif",
    params:
        config=CONFIG_FILE,
        model=lambda wildcards: region_model(wildcards.region),
        student=f"{RESULTS}/{{region}}/student",
        teacher=f"{RESULTS}/teacher",
        out=f"{RESULTS}/{{region}}/maps",
    threads: 2
    log:
        f"{RESULTS}/logs/{{region}}/predict_{{scenario}}.log",
    message:
        "Mapping flood probability for {wildcards.region}, scenario {wildcards.scenario}"
    shell:
        "floodkd predict --config {params.config} --region {wildcards.region} "
        "--scenario {wildcards.scenario} --model {params.model} --student {params.student} "
        "--teacher {params.teacher} --cube {input.cube} "
        "--out {params.out} > {log} 2>&1"
