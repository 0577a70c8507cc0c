"""``fonti`` commands that are neither the service nor ingestion (``fonti migrate``)."""
