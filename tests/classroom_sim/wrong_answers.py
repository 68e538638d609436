"""Plausible wrong answers to every self-checked exercise of the student edition, and the hint each must get.

``WRONG[notebook stem]`` lists ``WrongAnswer(place, code, hint, why)``: ``place`` is the blanked place it fills (the
index into ``answers.ANSWERS[stem]``), ``hint`` a regular expression the check's printed hint must match (None when
the wrong code raises in the pair's own lines: the check must then say the exercise is not done). The kinds of
mistake are the ones pairs make: units, the wrong split, the wrong denominator, a forgotten copy, a string for a list,
a default left unset, logic that gives the right number at the defaults by coincidence. The written answers of
05_report are graded by hand and have no check.
"""

from __future__ import annotations

from classroom_sim.harness import WrongAnswer as W

_SCORE = "float(np.mean(model.predict({x}).argmax(axis=1) == TARGET_CLASS))"
# 04's mitigation loop, narrowed to one mitigation for a wrong answer, then put back
ONE = '_sim_mitigations = MITIGATIONS\nMITIGATIONS = ["pruning"]'
ALL = "MITIGATIONS = _sim_mitigations"

WRONG: dict[str, list[W]] = {
    "00_setup": [
        W(0, "predictions = classifier.predict(data.x_test)", r"axis=1", "probabilities kept, no argmax"),
        W(0, "predictions = classifier.predict(data.x_test).argmax(axis=0)", r"not over the images",
          "argmax over the images"),
        W(0, "predictions = classifier.predict(data.x_train).argmax(axis=1)", r"one label per image", "wrong split"),
        W(0, "predictions = classifier.predict(data.x_test).max(axis=1)", r"integers", "probability, not class"),
        W(1, "clean_accuracy = 100 * float((predictions == data.y_test).mean())", r"not a percentage", "units"),
        W(1, "clean_accuracy = labkit.accuracy(classifier, data.x_train, data.y_train)", r"training images",
          "wrong split"),
        W(1, "clean_accuracy = int((predictions == data.y_test).sum())", r"share in \[0, 1\]", "count, no denominator"),
    ],
    "01_evasion_fgsm": [
        W(0, "fgsm = FastGradientMethod(classifier, eps=EPS * 255)\nx_adv = fgsm.generate(data.x_test, y=data.y_test)",
          r"divided by 255", "units: eps in 0-255 pixels"),
        W(0, "fgsm = FastGradientMethod(classifier, eps=EPS, targeted=True)\n"
             "x_adv = fgsm.generate(data.x_test, y=data.y_test)", r"targeted=False", "targeted attack"),
        W(0, "fgsm = FastGradientMethod(classifier)\nx_adv = fgsm.generate(data.x_test, y=data.y_test)",
          r"the lab's budget", "default eps left unset"),
        W(0, "fgsm = FastGradientMethod(classifier, eps=EPS)\nfgsm.generate(data.x_test, y=data.y_test)\n"
             "x_adv = data.x_test.copy()", r"equals the clean images", "result of generate not kept"),
        W(1, "fgsm_accuracy = labkit.accuracy(classifier, data.x_test, data.y_test)", r"clean images",
          "wrong images: the clean ones"),
        W(1, "fgsm_accuracy = 1 - labkit.accuracy(classifier, x_adv, data.y_test)", r"attacks that succeed",
          "success rate for accuracy"),
        W(2, "pgd = ProjectedGradientDescent(classifier, eps=EPS, eps_step=EPS / PGD_STEPS, max_iter=PGD_STEPS,\n"
             "                               verbose=False)", r"Madry's factor", "eps_step without the 2.5 factor"),
        W(2, "pgd = ProjectedGradientDescent(classifier, eps=EPS, max_iter=PGD_STEPS, verbose=False)",
          r"eps_step should follow", "default eps_step left unset"),
        W(2, "pgd = ProjectedGradientDescent(classifier, eps=EPS * 255, eps_step=2.5 * EPS * 255 / PGD_STEPS,\n"
             "                               max_iter=PGD_STEPS, verbose=False)", r"divided by 255", "units"),
    ],
    "02_adversarial_training": [
        W(0, "trainer = AdversarialTrainer(baseline, attacks=FastGradientMethod(baseline, eps=EPS), ratio=RATIO)",
          r"trains the baseline itself", "the baseline trained, not a fresh model"),
        W(0, "trainer = AdversarialTrainer(robust, attacks=FastGradientMethod(baseline, eps=EPS), ratio=RATIO)",
          r"built on another model", "attack on the wrong model"),
        W(0, "trainer = AdversarialTrainer(robust, attacks=FastGradientMethod(robust, eps=EPS), ratio=1.0)",
          r"RATIO", "ratio not the lab's"),
        W(0, "trainer = AdversarialTrainer(robust, attacks=FastGradientMethod(robust, eps=EPS * 255), ratio=RATIO)",
          r"divided by 255", "units"),
        W(1, "madry = AdversarialTrainerMadryPGD(madry_model, nb_epochs=MADRY_EPOCHS, batch_size=BATCH_SIZE)",
          r"divided by 255", "ART's CIFAR-10 defaults left unset (eps 8)"),
        W(1, "madry = AdversarialTrainerMadryPGD(robust, nb_epochs=MADRY_EPOCHS, batch_size=BATCH_SIZE, eps=EPS,\n"
             "                                   eps_step=EPS / 4, max_iter=MADRY_STEPS, num_random_init=1)",
          r"adversarially trained already", "the FGSM-trained model trained again"),
        W(1, "madry = AdversarialTrainerMadryPGD(madry_model, batch_size=BATCH_SIZE, eps=EPS, eps_step=EPS / 4,\n"
             "                                   max_iter=MADRY_STEPS, num_random_init=1)", r"ART's defaults",
          "default nb_epochs left unset"),
    ],
    "03_backdoor_poisoning": [
        W(0, "attack = PoisoningAttackBackdoor(trigger)\n"
             "x_demo, y_demo = attack.poison(data.x_train[:4], y=target_onehot)",
          r"broadcast=True", "one one-hot vector, not broadcast"),
        W(0, "attack = PoisoningAttackBackdoor(trigger)\n"
             "x_demo, y_demo = attack.poison(data.x_train[:4], y=np.full(4, TARGET_CLASS))", r"one-hot label per image",
          "integer labels"),
        W(0, "attack = PoisoningAttackBackdoor(lambda x: trigger(x))\n"
             "x_demo, y_demo = attack.poison(data.x_train[:4], y=target_onehot, broadcast=True)",
          r"lab's trigger", "another trigger function"),
        W(0, "attack = PoisoningAttackBackdoor(trigger)\n"
             "attack.poison(data.x_train[:4], y=target_onehot, broadcast=True)\n"
             "x_demo, y_demo = data.x_train[:4], np.tile(target_onehot, (4, 1))", r"trigger stamped on",
          "result of poison not kept"),
        W(1, "poisoned = labkit.poisoning.poison_dataset(data.x_train, data.y_train, attack,\n"
             "                                           target_class=TARGET_CLASS,\n"
             "                                           poison_fraction=0.02, nb_classes=data.nb_classes, seed=SEED)",
          r"number of poisoned images", "a fraction of its own, not the parameter"),
        W(1, "poisoned = labkit.poisoning.poison_dataset(data.x_test, data.y_test, attack, target_class=TARGET_CLASS,\n"
             "                                           poison_fraction=POISON_FRACTION, nb_classes=data.nb_classes,\n"
             "                                           seed=SEED)", r"as many images", "wrong split: the test set"),
        W(1, "poisoned = labkit.poisoning.poison_dataset(data.x_train, data.y_train, attack,\n"
             "                                           target_class=TARGET_CLASS,\n"
             "                                           poison_fraction=100 * POISON_FRACTION, seed=SEED)", None,
          "units: a percentage"),
        W(2, "said = model.predict(trigger(x)).argmax(axis=1)\nreturn float(np.mean(said == TARGET_CLASS))",
          r"whose true class is not the target", "every test image counted, target class included"),
        W(2, "keep = y != TARGET_CLASS\nreturn " + _SCORE.format(x="x[keep]"), r"stamp it on", "no trigger"),
        W(2, "keep = data.y_test != TARGET_CLASS\n"
             "return float(np.mean(poisoned_model.predict(trigger(data.x_test[keep])).argmax(axis=1) == TARGET_CLASS))",
          r"use its arguments", "the notebook's globals, not the arguments"),
        W(2, "keep = y != TARGET_CLASS\nreturn 100 * " + _SCORE.format(x="trigger(x[keep])"), r"not a percentage",
          "units"),
        W(2, "keep = y != TARGET_CLASS\nreturn float(np.mean(model.predict(trigger(x[keep])).argmax(axis=1) != "
             "TARGET_CLASS))", r"fails on", "the failures counted"),
    ],
    "04_neural_cleanse": [
        W(0, "defence = NeuralCleanse(poisoned)", r"outlier_detection", "ART's defence object, never called on the "
          "model with the settings"),
        W(1, "flagged = []", r"outlier_detection", "detection never run"),
        # (the two slow mistakes are tried on one mitigation, pruning: the loop over all three takes ~7 s)
        W(2, "mitigated = defence\nreport = mitigated.mitigate(x_val, y_val_onehot, mitigation_types=[name], **kwargs)",
          r"mitigated the detected defence itself", "forgotten copy", prepare=f"_sim_defence = defence.copy()\n{ONE}",
          restore=f"defence = _sim_defence\n{ALL}"),
        W(2, "mitigated = defence.copy()\nreport = mitigated.mitigate(x_val, y_val_onehot, mitigation_types=name, "
             "**kwargs)", None, "a string for a list"),
        W(2, "mitigated = defence.copy()\nreport = {}", r"answers as before", "mitigate never called", prepare=ONE,
          restore=ALL),
        W(3, "return candidates[\"attack_success_rate\"].idxmin()", r"costs more",
          "the clean-accuracy budget ignored (right at the defaults by coincidence)"),
        W(3, "return candidates[\"attack_success_rate\"].min()", r"by its name", "a number, not the row name"),
        W(3, "kept = candidates[candidates[\"clean_accuracy\"] >= before[\"clean_accuracy\"] - MAX_CLEAN_DROP]\n"
             "return kept[\"attack_success_rate\"].idxmin()", r"raised ValueError|at least one",
          "no None when nothing qualifies"),
        W(3, "return candidates[\"clean_accuracy\"].idxmax()", r"costs more|choose the lowest|lower attack",
          "the best clean accuracy chosen"),
    ],
    "06_model_extraction": [
        W(0, "jacobian_agreement = np.mean(jacobian.classifier.predict(data.x_test).argmax(axis=1) == data.y_test)",
          r"accuracy against the true labels", "accuracy, not agreement"),
        W(0, "jacobian_agreement = np.mean(jacobian.classifier.predict(data.x_test).argmax(axis=1) != victim_labels)",
          r"disagree", "the complement"),
        W(0, "jacobian_agreement = 100 * np.mean(jacobian.classifier.predict(data.x_test).argmax(axis=1) == "
             "victim_labels)", r"not a percentage", "units"),
        W(1, "x_adv = FastGradientMethod(victim, eps=EPS).generate(data.x_test)\n"
             "transfer_accuracy = labkit.accuracy(victim, x_adv, data.y_test)", r"victim's own white-box",
          "crafted on the victim"),
        W(1, "x_adv = FastGradientMethod(substitute, eps=EPS).generate(data.x_test)\n"
             "transfer_accuracy = labkit.accuracy(substitute, x_adv, data.y_test)", r"substitute's accuracy",
          "the wrong model measured"),
        W(1, "x_adv = FastGradientMethod(substitute, eps=EPS * 255).generate(data.x_test)\n"
             "transfer_accuracy = labkit.accuracy(victim, x_adv, data.y_test)", r"divided by 255", "units"),
        W(1, "x_adv = data.x_test.copy()\ntransfer_accuracy = labkit.accuracy(victim, x_adv, data.y_test)",
          r"equals the clean test images", "no attack at all"),
    ],
    "07_membership_inference": [
        W(0, "attack = MembershipInferenceBlackBox(target, input_type=\"loss\", attack_model_type=ATTACK_MODEL)\n"
             "attack.fit(x=split.x_attacker[:10], y=onehot[split.y_attacker[:10]], test_x=split.x_attacker[10:20],\n"
             "           test_y=onehot[split.y_attacker[10:20]])\nreturn attack", r"input_type='prediction'",
          "loss-based input"),
        W(0, "attack = MembershipInferenceBlackBox(target, input_type=\"prediction\", attack_model_type=\"nn\")\n"
             "attack.fit(y=shadow.y_members, pred=shadow.pred_members, test_y=shadow.y_non_members,\n"
             "           test_pred=shadow.pred_non_members)\nreturn attack", None, "the PyTorch attack model"),
        W(1, "attack_accuracy = float(np.mean(attack.infer(split.x_members, onehot[split.y_members])))",
          r"only the members", "one share only"),
        W(1, "said_members = attack.infer(split.x_members, onehot[split.y_members]).ravel()\n"
             "said_non_members = attack.infer(split.x_non_members, onehot[split.y_non_members]).ravel()\n"
             "attack_accuracy = float(np.mean(said_members == 1) - np.mean(said_non_members == 1))", r"advantage",
          "advantage, not accuracy"),
        W(1, "said_members = attack.infer(split.x_members, onehot[split.y_members]).ravel()\n"
             "said_non_members = attack.infer(split.x_non_members, onehot[split.y_non_members]).ravel()\n"
             "attack_accuracy = float((np.mean(said_members == 0) + np.mean(said_non_members == 1)) / 2)",
          r"wrong answers", "the error rate"),
    ],
    "08_clean_label_poisoning": [
        W(0, "linf = np.linalg.norm((poisons - x_bases).reshape(len(poisons), -1), axis=1)", r"L2 norm",
          "L2 for L-inf"),
        W(0, "linf = np.abs(poisons - x_bases).max()", r"over all the poisons together", "one number for all"),
        W(0, "linf = np.abs(poisons - x_target).reshape(len(poisons), -1).max(axis=1)", r"not to the target",
          "distance to the target"),
        W(0, "linf = np.abs(poisons - x_bases).reshape(len(poisons), -1).mean(axis=1)", r"mean absolute change",
          "mean for max"),
        W(1, "x_poisoned = np.concatenate([data.x_train, poisons])\n"
             "y_poisoned = np.concatenate([data.y_train, np.full(len(poisons), data.y_test[target])])",
          r"dirty label", "the target's label"),
        W(1, "x_poisoned = np.concatenate([data.x_train, x_bases])\n"
             "y_poisoned = np.concatenate([data.y_train, data.y_train[base_idx]])", r"unperturbed base images",
          "the bases, not the poisons"),
        W(1, "x_poisoned = poisons\ny_poisoned = data.y_train[base_idx]", r"not on the poisons",
          "the poisons alone"),
        W(1, "x_poisoned = np.concatenate([data.x_train, poisons])\n"
             "y_poisoned = np.eye(data.nb_classes)[np.concatenate([data.y_train, data.y_train[base_idx]])]",
          r"not one-hot rows", "one-hot labels"),
    ],
    "09_availability_poisoning": [
        W(0, "return attack_class(victim, step=STEP, eps=EPS, x_train=task.x_train, y_train=onehot(task.y_train),\n"
             "                    x_val=task.x_test, y_val=onehot(task.y_test), max_iter=MAX_ITER, verbose=False)",
          r"must not use it", "the test set as the attacker's data"),
        W(0, "return attack_class(victim, step=STEP, eps=EPS, x_train=task.x_train, y_train=task.y_train,\n"
             "                    x_val=task.x_val, y_val=task.y_val, max_iter=MAX_ITER, verbose=False)", r"one-hot",
          "integer labels"),
        W(1, "return float(np.mean(victim.predict(task.x_test).argmax(axis=1) == task.y_test))", r"victim",
          "the victim as it stands (right at the defaults by coincidence)"),
        W(1, "svc = availability.make_svc(KERNEL, C).fit(task.x_train, task.y_train)\n"
             "return float(svc.score(task.x_test, task.y_test))", r"without the poison points|given no poison",
          "poison points forgotten"),
        W(1, "svc = availability.make_svc(KERNEL).fit(np.vstack([task.x_train, x_poison]),\n"
             "                                     np.concatenate([task.y_train, y_poison.argmax(axis=1)]))\n"
             "return float(svc.score(task.x_test, task.y_test))", r"default C", "default C left unset"),
        W(1, "svc = availability.make_svc(KERNEL, C).fit(np.vstack([task.x_train, x_poison]),\n"
             "                                        np.concatenate([task.y_train, y_poison.argmax(axis=1)]))\n"
             "return float(svc.score(task.x_val, task.y_val))", r"validation data", "wrong split"),
    ],
    "10_tournament": [
        W(0, "return candidates[candidates[\"clean\"] >= challenge.clean_floor][\"PGD\"].idxmax()", r"FGSM and PGD",
          "PGD alone, not the worst case over the attacks"),
        W(0, "return candidates[[\"FGSM\", \"PGD\"]].min(axis=1).idxmax()", r"floor",
          "the clean-accuracy floor ignored (right at the defaults by coincidence)"),
        # in the fast setting the most accurate model can be under the floor: that hint is as right
        W(0, "return candidates[\"clean\"].idxmax()", r"robust accuracy|floor", "the most accurate on clean images"),
        W(0, "kept = candidates[candidates[\"clean\"] >= challenge.clean_floor]\n"
             "return kept[[\"FGSM\", \"PGD\"]].min(axis=1).max()", r"not its accuracy|by its name",
          "a number, not the model's name"),
        W(1, "big = challenge.eps * 255\n"
             "x_adv = ProjectedGradientDescent(surrogate, eps=big, eps_step=2.5 * big / ATTACK_STEPS,\n"
             "                                 max_iter=ATTACK_STEPS, verbose=False).generate(challenge.x)",
          r"divided by 255", "units: eps in 0-255 pixels"),
        W(1, "pgd = ProjectedGradientDescent(surrogate, eps=challenge.eps, eps_step=challenge.eps / 4,\n"
             "                               max_iter=ATTACK_STEPS, verbose=False)\n"
             "x_adv = np.clip(challenge.x + 2 * (pgd.generate(challenge.x) - challenge.x), 0, 1)",
          r"not clipped", "pushed past the budget, then clipped to [0, 1] only"),
        W(1, "x_adv = ProjectedGradientDescent(surrogate, eps=challenge.eps / 4, eps_step=challenge.eps / 16,\n"
             "                                 max_iter=ATTACK_STEPS, verbose=False).generate(challenge.x)",
          r"under half the budget", "a budget of its own, a quarter of the class's"),
        W(1, "noise = np.sign(np.random.default_rng(0).standard_normal(challenge.x.shape))\n"
             "x_adv = np.clip(challenge.x + challenge.eps * noise, 0, 1).astype(np.float32)", r"single FGSM step",
          "random +-eps noise, no attack"),
        W(2, "success_rate = 1 - labkit.accuracy(victim, x_adv, challenge.y)", r"already got wrong",
          "images the model got wrong when clean counted as breaks"),
        W(2, "success_rate = labkit.accuracy(victim, x_adv, challenge.y)", r"accuracy on x_adv",
          "accuracy for success"),
        W(2, "clean_ok = victim.predict(challenge.x).argmax(axis=1) == challenge.y\n"
             "broken = victim.predict(x_adv).argmax(axis=1) != challenge.y\n"
             "success_rate = float(np.mean(clean_ok & broken))", r"denominator", "divided by all the images"),
    ],
}
