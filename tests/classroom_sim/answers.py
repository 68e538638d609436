"""A pair's answers to every exercise of the student edition, written from the student edition alone.

These were written by reading only what a pair receives (``labkit student``): the exercise texts, the code around
each blank and labkit's public docstrings, never the solution key. They are the idiomatic code a second-year student
writes, deliberately not the key's: the class simulation (``tests/test_class_simulation.py``) fills the student
edition with them, runs it, and every self-check must pass.

``ANSWERS[notebook stem]`` holds one entry per blanked place of the student edition, in document order: the code of
a blanked region (at zero indentation; the harness indents it to the region's) or the markdown of a written answer.
"""

from __future__ import annotations

ANSWERS: dict[str, list[str]] = {
    "00_setup": [
        # Exercise 1: predictions
        "probs = classifier.predict(data.x_test)\n"
        "predictions = probs.argmax(axis=1)",
        # Exercise 2: clean accuracy
        "clean_accuracy = float((predictions == data.y_test).mean())",
    ],
    "01_evasion_fgsm": [
        # Exercise 1: FGSM and the adversarial test set
        "fgsm = FastGradientMethod(estimator=classifier, norm=np.inf, eps=EPS, targeted=False)\n"
        "x_adv = fgsm.generate(x=data.x_test, y=data.y_test)",
        # Exercise 2: accuracy under attack
        "adv_preds = np.argmax(classifier.predict(x_adv), axis=1)\n"
        "fgsm_accuracy = np.mean(adv_preds == data.y_test)",
        # Exercise 3: PGD with Madry's step rule
        "step = 2.5 * EPS / PGD_STEPS\n"
        "pgd = ProjectedGradientDescent(classifier, norm=np.inf, eps=EPS, eps_step=step, max_iter=PGD_STEPS,\n"
        "                               targeted=False, verbose=False)",
    ],
    "02_adversarial_training": [
        # Exercise 1: ART's AdversarialTrainer with FGSM on the model being trained
        "fgsm_on_robust = FastGradientMethod(robust, eps=EPS)\n"
        "trainer = AdversarialTrainer(robust, attacks=fgsm_on_robust, ratio=RATIO)",
        # Exercise 2: Madry's PGD adversarial training, every number in [0, 1] units
        "madry = AdversarialTrainerMadryPGD(madry_model, nb_epochs=MADRY_EPOCHS, batch_size=BATCH_SIZE, eps=EPS,\n"
        "                                   eps_step=EPS / 4, max_iter=MADRY_STEPS, num_random_init=1)",
    ],
    "03_backdoor_poisoning": [
        # Exercise 1: the backdoor attack and four poisoned demo images
        "attack = PoisoningAttackBackdoor(trigger)\n"
        "one_hot_target = np.zeros(data.nb_classes)\n"
        "one_hot_target[TARGET_CLASS] = 1\n"
        "x_demo, y_demo = attack.poison(data.x_train[:4], y=np.tile(one_hot_target, (4, 1)))",
        # Exercise 2: the poisoned training set
        "poisoned = labkit.poisoning.poison_dataset(data.x_train, data.y_train, attack, target_class=TARGET_CLASS,\n"
        "                                           poison_fraction=POISON_FRACTION, source_classes=SOURCE_CLASSES,\n"
        "                                           nb_classes=data.nb_classes, seed=SEED)",
        # Exercise 3 (body of success_rate): only images that are not of the target class count
        "not_target = y != TARGET_CLASS\n"
        "said = model.predict(trigger(x[not_target])).argmax(axis=1)\n"
        "return float(np.mean(said == TARGET_CLASS))",
    ],
    "04_neural_cleanse": [
        # Exercise 1, first blank: the defence, through ART's API
        "defence = NeuralCleanse(poisoned)(poisoned, steps=STEPS, learning_rate=0.1, batch_size=32, seed=SEED)",
        # Exercise 1, second blank: ART's outlier detection on the defender's data
        "flagged = defence.outlier_detection(x_val, y_val_onehot)",
        # Exercise 2 (inside the loop): a fresh copy per mitigation
        "mitigated = defence.copy()\n"
        "report = mitigated.mitigate(x_val, y_val_onehot, mitigation_types=[name],\n"
        "                            unlearning_epochs=UNLEARNING_EPOCHS)",
        # Exercise 3 (body of choose_mitigation): the lowest ASR among those within the clean-accuracy budget
        "drop = before[\"clean_accuracy\"] - candidates[\"clean_accuracy\"]\n"
        "allowed = candidates[drop <= MAX_CLEAN_DROP]\n"
        "if len(allowed) == 0:\n"
        "    return None\n"
        "return allowed[\"attack_success_rate\"].idxmin()",
    ],
    "05_report": [
        "Madry's PGD training is the better buy. Under FGSM the two trained models look close, but under PGD, the "
        "stronger attack, Madry's model keeps more of its accuracy, and it pays a few more points of clean "
        "accuracy for it. FGSM training only learned to resist one gradient step, so judging it by FGSM alone "
        "overstates it; the comparison that matters is under the strongest attack we can run.",
        "An attacker who does not know about feature squeezing crafts images against the bare model, and rounding "
        "the pixels undoes much of that perturbation, so the defence looks better than it is. An attacker who knows "
        "the defence attacks the defended model itself (passing the gradient through the squeezing) and tries "
        "harder, e.g. PGD with random restarts; that adaptive worst case is the number we report.",
        "We would deploy unlearning: in our table it removes almost all of the attack success rate and costs about "
        "a point of clean accuracy, while filtering also turns away a share of honest inputs. An attacker could use "
        "a larger or fainter trigger spread over the image, or backdoor several target classes, so that no single "
        "class needs an unusually small mask.",
        "We would give the worst-case accuracy under attack next to the clean accuracy, because one number hides "
        "the trade-off between them. It also hides the spread between runs: with another seed the numbers move by "
        "about a point, so two models one point apart are not really different.",
    ],
    "06_model_extraction": [
        # Exercise 1: agreement of the substitute with the victim
        "sub_labels = np.argmax(jacobian.classifier.predict(data.x_test), axis=1)\n"
        "jacobian_agreement = np.mean(sub_labels == victim_labels)",
        # Exercise 2 (inside fgsm_transfer): the thief attacks its own model, the victim is measured
        "fgsm = FastGradientMethod(estimator=substitute, eps=EPS)\n"
        "x_adv = fgsm.generate(x=data.x_test)  # the thief has no labels: FGSM uses the substitute's own answers\n"
        "transfer_accuracy = labkit.accuracy(victim, x_adv, data.y_test)",
    ],
    "07_membership_inference": [
        # Exercise 1 (inside black_box_attack): ART's black-box attack trained on the shadow models
        "mia = MembershipInferenceBlackBox(target, input_type=\"prediction\", attack_model_type=ATTACK_MODEL)\n"
        "mia.fit(y=shadow.y_members, pred=shadow.pred_members,\n"
        "        test_y=shadow.y_non_members, test_pred=shadow.pred_non_members)\n"
        "return mia",
        # Exercise 2: balanced accuracy over members and non-members
        "said_members = attack.infer(split.x_members, onehot[split.y_members]).ravel()\n"
        "said_non_members = attack.infer(split.x_non_members, onehot[split.y_non_members]).ravel()\n"
        "attack_accuracy = (np.mean(said_members == 1) + np.mean(said_non_members == 0)) / 2",
    ],
    "08_clean_label_poisoning": [
        # Exercise 1: each poison's largest pixel change against its own base
        "diff = np.abs(poisons - x_bases)\n"
        "linf = diff.reshape(len(poisons), -1).max(axis=1)",
        # Exercise 2: the clean training set followed by the poisons, with their honest (base) labels
        "x_poisoned = np.concatenate([data.x_train, poisons], axis=0)\n"
        "y_poisoned = np.concatenate([data.y_train, data.y_train[base_idx]])",
    ],
    "09_availability_poisoning": [
        # Exercise 1 (inside make_attack): ART's SVM poisoning attack
        "return attack_class(classifier=victim, step=STEP, eps=EPS, x_train=task.x_train,\n"
        "                    y_train=onehot(task.y_train), x_val=task.x_val, y_val=onehot(task.y_val),\n"
        "                    max_iter=MAX_ITER, verbose=False)",
        # Exercise 2 (body of poisoned_svm_accuracy): a fresh SVM on clean + poison points, scored on the test set
        "x_all = np.concatenate([task.x_train, x_poison])\n"
        "y_all = np.concatenate([task.y_train, np.argmax(y_poison, axis=1)])\n"
        "svc = availability.make_svc(KERNEL, C)\n"
        "svc.fit(x_all, y_all)\n"
        "return svc.score(task.x_test, task.y_test)",
    ],
    "10_tournament": [
        # Exercise 1 (body of choose_entry): over the floor, the best worst-case number under attack
        "best, best_robust = None, -1.0\n"
        "for name, row in candidates.iterrows():\n"
        "    robust = min(row[\"FGSM\"], row[\"PGD\"])\n"
        "    if row[\"clean\"] >= challenge.clean_floor and robust > best_robust:\n"
        "        best, best_robust = name, robust\n"
        "return best",
        # Exercise 2: PGD with restarts on our own model, at the class budget, nothing clipped afterwards
        "attack = ProjectedGradientDescent(estimator=surrogate, norm=np.inf, eps=challenge.eps,\n"
        "                                  eps_step=2.5 * challenge.eps / ATTACK_STEPS, max_iter=ATTACK_STEPS,\n"
        "                                  num_random_init=RESTARTS, batch_size=256, verbose=False)\n"
        "x_adv = attack.generate(x=challenge.x, y=challenge.y)",
        # Exercise 3: breaks among the images the victim gets right when clean
        "clean_pred = np.argmax(victim.predict(challenge.x), axis=1)\n"
        "adv_pred = np.argmax(victim.predict(x_adv), axis=1)\n"
        "correct = clean_pred == challenge.y\n"
        "success_rate = np.sum(correct & (adv_pred != challenge.y)) / np.sum(correct)",
    ],
}
