"""Reading the graph of a serialized functional model (``model.get_config()``): who feeds
whom. Shared by the rewrites of applications.py (padding, bias folding) and dilation.py."""


def config_parents(node_config):
    """Names of the layers whose outputs feed a serialized call (any nesting of args)."""
    found = []

    def walk(item):
        if isinstance(item, dict):
            history = (
                item.get("config", {}).get("keras_history")
                if item.get("class_name") == "__keras_tensor__"
                else None
            )
            if history:
                found.append(history[0])
                return
            for value in item.values():
                walk(value)
        elif isinstance(item, (list, tuple)):
            for value in item:
                walk(value)

    walk(node_config)
    return found


def config_output_names(config):
    """Names of the layers that give a functional config's outputs."""
    outputs = config["output_layers"]
    if outputs and isinstance(outputs[0], str):  # a single output: [name, node, index]
        outputs = [outputs]
    return [entry[0] for entry in outputs]


def config_parents_and_consumers(config):
    """({layer: [parent layers]}, {layer: [consumer layers]}) of a functional config."""
    parents = {layer["name"]: config_parents(layer["inbound_nodes"]) for layer in config["layers"]}
    consumers = {name: [] for name in parents}
    for name, names in parents.items():
        for parent in names:
            consumers[parent].append(name)
    return parents, consumers
