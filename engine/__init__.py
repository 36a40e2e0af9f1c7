"""The pipeline engine: parameters, steps, the transfer loop and run accounting. No Prefect imports."""
