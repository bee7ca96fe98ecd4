"""Paper tables as data and their rendering next to reproduced results."""
