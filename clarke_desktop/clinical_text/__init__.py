"""Reading clinical language: numbers, units, doses, frequencies, dates, drugs, and their binding."""
