"""The integration with Locust (private): ``plugin``, the one module that wires locust-rs to Locust's events and
options; ``distributed``, the master's and workers' check that they keep statistics alike, and the lost-worker line;
``state``, each run's state kept on its Locust ``Environment``."""
