# Django's English formats, with a short day for the home page's usage chart.
MONTH_DAY_FORMAT = "M j"
