"""The data layer: conventions (`base`), engines and sessions (`engine`), migrations."""
