# Stage 6: tiled inference over the whole region, streamed to Cloud-Optimized GeoTIFFs,
# and the flood extent (classes and polygons, the reference water apart) and likelihood.
rule predict:
    input:
        cube=cube_manifest,
        model=map_model,
        risk=scenario_risk_inputs,
        reference_water=rules.reference_water.output.reference,
        waterline=map_waterline,
    output:
        probability=f"{RESULTS}/{{region}}/maps/flood_probability_{{scenario}}.tif",
        uncertainty=f"{RESULTS}/{{region}}/maps/flood_uncertainty_{{scenario}}.tif",
        extent=f"{RESULTS}/{{region}}/maps/flood_extent_{{scenario}}.tif",
        extent_polygons=f"{RESULTS}/{{region}}/maps/flood_extent_{{scenario}}.gpkg",
        likelihood=f"{RESULTS}/{{region}}/maps/flood_likelihood_{{scenario}}.tif",
        inputs_used=f"{RESULTS}/{{region}}/maps/flood_inputs_used_{{scenario}}.tif",
        probability_quicklook=report(
            f"{RESULTS}/{{region}}/maps/flood_probability_{{scenario}}.png",
            caption="../report/quicklook.rst", category="Maps",
            labels={"region": "{region}", "scenario": "{scenario}", "layer": "probability"}),
        uncertainty_quicklook=report(
            f"{RESULTS}/{{region}}/maps/flood_uncertainty_{{scenario}}.png",
            caption="../report/quicklook.rst", category="Maps",
            labels={"region": "{region}", "scenario": "{scenario}", "layer": "uncertainty"}),
    params:
        config=EFFECTIVE_CONFIG,
        settings=predict_settings,
        model=lambda wildcards: region_model(wildcards.region),
        student=f"{RESULTS}/{{region}}/student",
        teacher=f"{RESULTS}/teacher",
        cube=f"{RESULTS}/{{region}}/cube.zarr",
        risk=f"{RESULTS}/{{region}}/risk",
        # the student's ["--waterline", path]; nothing where the teacher maps
        waterline=lambda wildcards, input: [arg for path in input.waterline
                                            for arg in ("--waterline", path)],
        out=lambda wildcards, output: os.path.dirname(output.probability),
    # one core: a second thread saved 12% (demo: 7.2 -> 6.4 s), running two scenarios at
    # once on two cores saves half
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        f"{RESULTS}/logs/{{region}}/predict_{{scenario}}.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/predict_{{scenario}}.tsv"
    message:
        "Mapping flood probability for {wildcards.region}, scenario {wildcards.scenario}"
    shell:
        "floodkd predict --config {params.config:q} --region {wildcards.region:q} "
        "--scenario {wildcards.scenario:q} --model {params.model:q} --student {params.student:q} "
        "--teacher {params.teacher:q} --cube {params.cube:q} --risk {params.risk:q} "
        "--reference-water {input.reference_water:q} {params.waterline:q} --out {params.out:q} "
        "--threads {threads} --log {log:q}"
