"""What a person reads: tables, reports, plots."""
