"""Runtime side of the patch set: copied into an upstream FaceFusion 3.5.0 checkout as
`facefusion_engine/upstream_bridge/`, where `facefusion` is upstream's package and `facefusion_engine` this engine.
The hooks the patch inserts into upstream's functions call these modules and nothing else."""
