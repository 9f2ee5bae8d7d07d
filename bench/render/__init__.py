"""What a person reads: number formats, terminal tables, comparisons, HTML/Markdown reports, plots."""
