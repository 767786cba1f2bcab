"""A project's extract: its granted tables, columns and period, its cohort's patients, under its
own pseudonyms; conformity and re-identification risk decide whether it may be used."""
