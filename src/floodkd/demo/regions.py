"""The two demo regions: what each coast looks like and what data each one gets."""

from __future__ import annotations

from dataclasses import dataclass

from floodkd.demo.hydro import Constituent
from floodkd.demo.terrain import CoastLayout

__all__ = ["RegionSpec", "DEMO_REGIONS", "PERIOD_START", "PERIOD_END"]

PERIOD_START = "2023-01-01T00:00:00"
PERIOD_END = "2024-12-31T23:00:00"


@dataclass(frozen=True)
class RegionSpec:
    """One demo region: place, coast, tides and how much data it is given."""

    name: str
    role: str  # "source" (data-rich, trains the teacher) or "target" (data-sparse)
    centre_lon: float
    centre_lat: float
    utm_epsg: int
    country: str
    layout: CoastLayout
    constituents: tuple[Constituent, ...]
    sea_level_trend_m_per_year: float
    attenuation_m_per_km: float  # loss of water level per km of overland flow
    # passes either on listed (year, month)s or every ``radar_revisit_days`` through the record
    radar_months: tuple[tuple[int, int], ...]
    radar_revisit_days: int
    radar_hour_utc: float
    optical_count: int
    optical_hour_utc: float
    mean_cloud_fraction: float
    optical_crs: str  # "utm" or "EPSG:4326"
    s2_tile: str
    s2_relative_orbit: int
    gauge_format: str  # "gesla3" or "uhslc"
    gauge_names: tuple[str, ...]
    gauge_gap_days: tuple[int, int]  # range of each gap's length
    mean_wind_m_s: float
    # fields whose bunds hold the monsoon rain as standing water (waterlogged paddies)
    bunded_fields: bool
    # the share of cropland fields lying fallow (bare, ploughed or stubble) at the low of
    # the crop calendar; none at its peak
    dry_season_fallow: float


DEMO_REGIONS = (
    RegionSpec(
        name="demo-source",
        role="source",
        centre_lon=90.60,
        centre_lat=22.05,
        utm_epsg=32646,
        country="BGD",
        layout=CoastLayout(landward_azimuth_deg=0.0, high_water_m=1.7, dike_crest_m=4.6,
                           mangrove_fringe=False),
        constituents=(  # macrotidal Meghna estuary mouth
            Constituent("M2", 1.05, 118.0), Constituent("S2", 0.45, 152.0),
            Constituent("N2", 0.20, 101.0), Constituent("K1", 0.17, 238.0),
            Constituent("O1", 0.08, 221.0),
        ),
        sea_level_trend_m_per_year=0.005,
        attenuation_m_per_km=0.8,
        # 16 passes through both years, dense in the cyclone and monsoon seasons
        radar_months=((2023, 2), (2023, 4), (2023, 5), (2023, 6), (2023, 7), (2023, 8),
                      (2023, 9), (2023, 10), (2023, 11), (2024, 1), (2024, 5), (2024, 6),
                      (2024, 7), (2024, 8), (2024, 10), (2024, 11)),
        radar_revisit_days=0,
        radar_hour_utc=12.03,  # ascending pass, about 18:00 local time
        optical_count=8,
        optical_hour_utc=4.55,
        mean_cloud_fraction=0.35,
        optical_crs="utm",
        s2_tile="46QBM",
        s2_relative_orbit=90,
        gauge_format="gesla3",
        gauge_names=("Char Synth East", "Char Synth West", "Synth Ghat"),
        gauge_gap_days=(2, 9),
        mean_wind_m_s=5.0,
        # aman paddies and bunded fields of the Meghna coast stand under monsoon rain: the
        # flooded fields a real flood event is mostly made of, here in the labelled record
        bunded_fields=True,
        # salinity leaves much of the coastal zone's cropland fallow after the aman harvest
        # (an assumed half of the fields at the dry season's low)
        dry_season_fallow=0.5,
    ),
    RegionSpec(
        name="demo-target",
        role="target",
        centre_lon=106.65,
        centre_lat=9.95,
        utm_epsg=32648,
        country="VNM",
        layout=CoastLayout(landward_azimuth_deg=315.0, high_water_m=1.5, dike_crest_m=4.2,
                           mangrove_fringe=True),
        constituents=(  # mixed tide of the Mekong mouths: strong diurnal constituents
            Constituent("M2", 0.78, 23.0), Constituent("S2", 0.30, 68.0),
            Constituent("N2", 0.16, 5.0), Constituent("K1", 0.58, 312.0),
            Constituent("O1", 0.44, 262.0),
        ),
        sea_level_trend_m_per_year=0.0045,
        attenuation_m_per_km=1.2,
        # Sentinel-1A alone since Sentinel-1B failed (Dec 2021): one relative orbit is
        # revisited every 12 days, so the target gets ~60 passes in two years, at whatever
        # water level the tide and surges give at 05:50 local time
        radar_months=(),
        radar_revisit_days=12,
        radar_hour_utc=22.88,  # descending pass, about 05:50 local time
        optical_count=10,
        optical_hour_utc=3.33,
        mean_cloud_fraction=0.80,
        optical_crs="EPSG:4326",
        s2_tile="48PXS",
        s2_relative_orbit=32,
        gauge_format="uhslc",
        gauge_names=("Synth Vam Kenh", "Synth Binh Dai"),
        gauge_gap_days=(60, 140),
        mean_wind_m_s=5.5,
        # kept False so that the target's record (truth, labels, surges) stays as it was
        bunded_fields=False,
        # kept at none, as the target's record was (the delta grows two or three rice crops
        # a year, so fewer fields lie bare)
        dry_season_fallow=0.0,
    ),
)
