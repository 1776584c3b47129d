"""Structural metrics of appendix A.6: RDF, ADF, their averages over structures and RMSD.

RDF g(r): ASE's definition and normalisation (``ase.geometry.rdf.get_rdf``): bin k covers
((k-1)·dr, k·dr], dr = r_max / n_bins, g_k = count_k / (N · N/V · shell volume_k), where
count_k counts ordered pairs (both i→j and j→i) and periodic images of an atom itself.
ASE refuses cells narrower than 2·r_max; here every periodic image within r_max is counted
(vesin's neighbour list), which is what ASE gives for a supercell wide enough, so small cells
(e.g. generated 8-10 Å a-SiO2 cells) are measured the same way as large ones.

ADF P(theta): for each atom i, every ordered pair of distinct neighbours j, k within the
cutoff (periodic images included) contributes the angle j-i-k, in degrees; the histogram
over [0°, 180°] is normalised to a density per degree (it integrates to 1 over degrees; with
the default 1° bins the values also sum to 1). A structure without any angle has an ADF of
zeros.

Averages over structures are plain means of per-structure distributions; RMSD (Eq. 18) is
the root mean square difference of two averaged distributions over bins. Ghost atoms (``X``)
are removed before anything is computed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from vesin import NeighborList

from mdshortcut.data.ghost import remove_ghosts


@dataclass(frozen=True)
class StructureConfig:
    """The ``structure`` config section: RDF up to rdf_rmax (Å) in rdf_bins; ADF of
    neighbours within adf_cutoff (Å) in adf_bins over 0-180°."""

    rdf_rmax: float = 5.0
    rdf_bins: int = 100
    adf_cutoff: float = 3.0
    adf_bins: int = 180


def _pairs(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Full neighbour list within ``cutoff``: centre index i (sorted) and vectors r_j - r_i (Å)."""
    nl = NeighborList(cutoff=cutoff, full_list=True, sorted=True, n_threads=1)
    i, j, shift = nl.compute(atoms.positions, atoms.cell.array, True, quantities="ijS")
    # The vector as ASE forms it, so that binning agrees with ASE to the last bit.
    vectors = atoms.positions[j] + shift @ atoms.cell.array - atoms.positions[i]
    return i, vectors


def rdf_bins(rmax: float, nbins: int) -> np.ndarray:
    """Bin centres, Å (nbins,)."""
    edges = np.linspace(0.0, rmax, nbins + 1)
    return 0.5 * (edges[:-1] + edges[1:])


def adf_bins(nbins: int) -> np.ndarray:
    """Bin centres, degrees (nbins,)."""
    edges = np.linspace(0.0, 180.0, nbins + 1)
    return 0.5 * (edges[:-1] + edges[1:])


def _rdf(n: int, volume: float, distances: np.ndarray, rmax: float, nbins: int) -> np.ndarray:
    edges = np.linspace(0.0, rmax, nbins + 1)
    dr = float(rmax / nbins)
    index = np.ceil(distances / dr).astype(int)
    counts = np.bincount(index, minlength=nbins + 1)[1 : nbins + 1].astype(float)
    shells = 4.0 * np.pi * dr * (edges[:-1] ** 2 + edges[:-1] * dr + dr**2 / 3.0)
    return counts / (n * (n / volume) * shells)


def _adf(centres: np.ndarray, vectors: np.ndarray, nbins: int) -> np.ndarray:
    """Angle histogram from a centre-sorted neighbour list (centres (E,), vectors (E, 3))."""
    if len(centres) == 0:
        return np.zeros(nbins)
    starts = np.flatnonzero(np.r_[True, centres[1:] != centres[:-1]])
    sizes = np.diff(np.r_[starts, len(centres)])
    group_size = np.repeat(sizes, sizes)  # neighbours of each edge's centre
    group_start = np.repeat(starts, sizes)
    first = np.repeat(np.arange(len(centres)), group_size)
    offset = np.arange(len(first)) - np.repeat(np.cumsum(group_size) - group_size, group_size)
    second = np.repeat(group_start, group_size) + offset
    keep = first != second
    first, second = first[keep], second[keep]
    if len(first) == 0:
        return np.zeros(nbins)
    u = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = np.clip(np.einsum("ij,ij->i", u[first], u[second]), -1.0, 1.0)
    width = 180.0 / nbins
    index = np.minimum((np.degrees(np.arccos(cos)) / width).astype(int), nbins - 1)
    counts = np.bincount(index, minlength=nbins).astype(float)
    return counts / (counts.sum() * width)


def rdf_adf(atoms: Atoms, cfg: StructureConfig) -> tuple[np.ndarray, np.ndarray]:
    """RDF (cfg.rdf_bins,) and ADF (cfg.adf_bins,) of one periodic structure, ghosts removed."""
    atoms = remove_ghosts(atoms)
    centres, vectors = _pairs(atoms, max(cfg.rdf_rmax, cfg.adf_cutoff))
    d = np.sqrt(np.add.reduce(vectors**2, axis=1))
    in_rdf = d <= cfg.rdf_rmax
    g = _rdf(len(atoms), atoms.cell.volume, d[in_rdf], cfg.rdf_rmax, cfg.rdf_bins)
    in_adf = d < cfg.adf_cutoff
    p = _adf(centres[in_adf], vectors[in_adf], cfg.adf_bins)
    return g, p


def nearest_neighbour_distances(atoms: Atoms, cutoff: float) -> np.ndarray:
    """(N,) distance (Å) from each atom (ghosts removed) to its nearest neighbour, periodic
    images included; inf where none lies within ``cutoff`` Å."""
    atoms = remove_ghosts(atoms)
    centres, vectors = _pairs(atoms, cutoff)
    nearest = np.full(len(atoms), np.inf)
    np.minimum.at(nearest, centres, np.sqrt(np.add.reduce(vectors**2, axis=1)))
    return nearest


def average_rdf_adf(frames: Iterable[Atoms], cfg: StructureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Mean RDF and mean ADF over structures (A.6); raises ValueError for no structures."""
    total_g, total_p, n = np.zeros(cfg.rdf_bins), np.zeros(cfg.adf_bins), 0
    for atoms in frames:
        g, p = rdf_adf(atoms, cfg)
        total_g += g
        total_p += p
        n += 1
    if n == 0:
        raise ValueError("no structures to average")
    return total_g / n, total_p / n


def rmsd(f: np.ndarray, g: np.ndarray) -> float:
    """Eq. 18: sqrt(mean over bins of (f - g)^2) of two distributions on the same bins."""
    f, g = np.asarray(f, dtype=float), np.asarray(g, dtype=float)
    if f.shape != g.shape:
        raise ValueError(f"distributions on different bins: {f.shape} vs {g.shape}")
    return float(np.sqrt(np.mean((f - g) ** 2)))
