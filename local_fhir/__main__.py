from local_fhir.cli import main

main()
