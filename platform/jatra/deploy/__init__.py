"""What the deployments (the Helm chart) are built from, generated from the code and the generated files."""
