"""The domain logic of each workflow step; one module per step, one import away from its handler."""
