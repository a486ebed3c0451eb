# Stage 7 (risk, impact): the exposure of a region's assets per scenario, and the plan for
# its latest conditions.
rule exposure:
    input:
        maps=exposure_maps,
        # not read: see cube_manifest
        cube=cube_manifest,
        assets=lambda wildcards: config["regions"][wildcards.region]["assets"],
    output:
        exposure=f"{RESULTS}/{{region}}/exposure.gpkg",
        summary=f"{RESULTS}/{{region}}/exposure_summary.csv",
    params:
        config=EFFECTIVE_CONFIG,
        settings=exposure_settings,
        maps=f"{RESULTS}/{{region}}/maps",
        out=lambda wildcards, output: os.path.dirname(output.exposure),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    log:
        f"{RESULTS}/logs/{{region}}/exposure.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/exposure.tsv"
    message:
        "Exposure of the assets of {wildcards.region} per scenario"
    shell:
        "floodkd exposure --config {params.config:q} --region {wildcards.region:q} "
        "--maps {params.maps:q} --out {params.out:q} --threads {threads} --log {log:q}"


rule plan:
    input:
        unpack(plan_inputs),
        cube=cube_manifest,
        probability=f"{RESULTS}/{{region}}/maps/flood_probability_observed.tif",
        uncertainty=f"{RESULTS}/{{region}}/maps/flood_uncertainty_observed.tif",
    output:
        plan=f"{RESULTS}/{{region}}/plan.json",
        zones=f"{RESULTS}/{{region}}/plan_zones.geojson",
    params:
        config=EFFECTIVE_CONFIG,
        settings=plan_settings,
        cube=f"{RESULTS}/{{region}}/cube.zarr",
        maps=lambda wildcards, input: os.path.dirname(input.probability),
        # optional inputs as CLI flags: the teacher where sources train one, return levels
        # where the workflow makes them
        optional=lambda wildcards, input: (
            (["--teacher", os.path.dirname(input.teacher)] if "teacher" in input.keys() else [])
            + (["--return-levels", input.return_levels] if "return_levels" in input.keys() else [])
        ),
        out=lambda wildcards, output: os.path.dirname(output.plan),
    # one core: its CPU time is its wall time, a second thread would idle
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    log:
        f"{RESULTS}/logs/{{region}}/plan.log",
    benchmark:
        f"{BENCHMARKS}/{{region}}/plan.tsv"
    message:
        "Planning actions for {wildcards.region} from its latest conditions"
    shell:
        "floodkd plan --config {params.config:q} --region {wildcards.region:q} "
        "--cube {params.cube:q} --maps {params.maps:q} {params.optional:q} "
        "--out {params.out:q} --threads {threads} --log {log:q}"
