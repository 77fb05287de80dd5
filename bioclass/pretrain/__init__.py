"""Self-supervised contrastive pretraining on unlabelled recordings (`bioclass pretrain`)."""
