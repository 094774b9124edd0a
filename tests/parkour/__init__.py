"""The parkour policy: checkpoint, networks, observation, depth, actions, training contract."""
