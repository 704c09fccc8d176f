"""What every REST API endpoint shares: auth, errors, limits, pagination and the schema's common parts."""
