"""The loop's shared vocabulary: the `Lab` context, `HumanData`, the `Task` Protocol and its
`Evaluation`, and the policies the loop applies (`starts`: where a generation's training
starts; `mixing`: what it trains on; `events`: what the engine tells the world).

It imports only config, records, models and (for types) datasets, metrics and training: the tasks,
the refinery and the engine stand on it, never the other way round.
"""

from collapselab.lab.contract import Evaluation, HumanData, Lab, Task

__all__ = ["Evaluation", "HumanData", "Lab", "Task"]
