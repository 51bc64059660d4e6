"""The Kopf operator: reconciles GameServers and Blueprints into Pods, volumes and Services."""
