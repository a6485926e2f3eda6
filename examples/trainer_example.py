import csv

from transformers import Trainer, TrainingArguments

from multimodal_cat.modeling import LabelSpace, MultimodalCatModel, MultimodalCatProcessor
from multimodal_cat.training import MultimodalCatCollator, build_compute_metrics, build_dataset

vision, text = "dinov2-small", "minilm"  # short names, hub ids or folders
feed = "examples/products.csv"  # 20 products; their seller categories are the labels here
with open(feed, newline="", encoding="utf-8") as f:
    space = LabelSpace.from_paths(sorted({row["seller_category"] for row in csv.DictReader(f)}))
model = MultimodalCatModel.from_encoders(vision, text, taxonomy=space, freeze_encoders=True)
processor = MultimodalCatProcessor.from_encoders(vision, text)
rows, report = build_dataset(feed, space, category="seller_category", image_root="examples")
splits = rows.train_test_split(test_size=0.25, seed=0)
trainer = Trainer(
    model=model,
    args=TrainingArguments(
        "trainer-out", num_train_epochs=3, learning_rate=2e-3, report_to="none",
        remove_unused_columns=False,  # the collator reads the raw title and image columns
    ),
    train_dataset=splits["train"],
    eval_dataset=splits["test"],
    data_collator=MultimodalCatCollator(processor),
    compute_metrics=build_compute_metrics(model.config.category_parents),
)
trainer.train()
metrics = trainer.evaluate()  # eval_loss, eval_leaf_accuracy, eval_hierarchical_f1, ...
print(metrics)
model.save_pretrained("trainer-out")
processor.save_pretrained("trainer-out")
