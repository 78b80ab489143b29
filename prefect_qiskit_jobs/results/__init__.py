"""Results: fetched once, stored in Prefect result storage under the job id, summarised for the UI."""
