"""The paper's models (zoo), parameter/MAC/memory counts, profiles and plots, built-in datasets."""
