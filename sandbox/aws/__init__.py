"""The sandbox's AWS: moto, extended with what it lacks, and IAM evaluated per function."""
