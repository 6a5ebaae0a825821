"""Letter writer (`writer.write_document`, `writer.regenerate_section`), templates
(`templates`), facts sections from the record (`facts`), transcript-vs-record discrepancies
(`discrepancies.detect_discrepancies`) and the narrative fact check (`fact_check.fact_check`).
"""
