# Django's Simplified Chinese formats, with the short day Chinese dashboards use (2月1日, not 02月1日).
MONTH_DAY_FORMAT = "n月j日"
# Django's zh_Hans leaves grouping off, so intcomma printed 1248166; Chinese shop backends write 1,248,166.
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
