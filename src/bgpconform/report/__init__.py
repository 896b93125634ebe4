"""The run report: what a release manager signs from, and the files CI systems read."""
