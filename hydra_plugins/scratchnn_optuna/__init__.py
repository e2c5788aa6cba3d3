"""scratchnn's Optuna sweeper for Hydra: `defaults: - override /hydra/sweeper: optuna`.

A replacement for hydra-optuna-sweeper (whose last release pins optuna<3) on Optuna >= 4, with
a study kept in an RDB storage, so a killed search resumes where it stopped, and failed or
diverged trials recorded as FAIL instead of stopping the search.

Hydra imports every module of this package whose name does not start with "_" when it scans
for plugins (at the start of every run), so `config` and `optuna_sweeper` import no Optuna;
the modules that do (`_space`, `_study`) are imported when a search starts.
"""
