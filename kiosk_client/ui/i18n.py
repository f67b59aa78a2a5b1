"""Every string the kiosk shows, in French (default) and English. Keys are stable identifiers."""

from __future__ import annotations

import logging
import re
from datetime import datetime

log = logging.getLogger(__name__)

CATALOGUE: dict[str, dict[str, str]] = {
    "fr": {
        "language.switch": "English",
        "clerk.unnamed": "votre conseiller",
        "listen": "Écouter",
        "check.title": "Vous vous voyez ? Vous m'entendez ?",
        "check.hint": "Regardez-vous sur l'image. Touchez « Essayer le son » : une petite musique doit se faire entendre.",
        "check.test_sound": "Essayer le son",
        "check.speak": "Votre micro : parlez, la barre bouge quand il vous entend.",
        "check.no_microphone": "Pas de micro sur cette borne. {clerk} ne vous entendra pas. Prévenez la personne de l'accueil.",
        "volume.down": "Son −",
        "volume.up": "Son +",
        "volume.level": "Son : {level} sur {levels}",
        "notice.read_aloud_missing": "Lecture à voix haute indisponible : boutons « Écouter » masqués (vérifier speech-dispatcher et la voix espeak-ng).",
        "notice.sounds_missing": "Pas de sortie son pour la borne : signaux sonores muets.",
        "text.larger": "Texte plus grand",
        "text.smaller": "Texte normal",
        "idle.welcome": "Bienvenue",
        "idle.today": "Rendez-vous du jour",
        "idle.none_today": "Aucun autre rendez-vous aujourd'hui.",
        "idle.schedule_unknown": "Le planning n'est pas encore disponible.",
        "idle.help": "Pour un rendez-vous, demandez à la personne de l'accueil.",
        "appointment.line": "{time} — {service}",
        "upcoming.title": "Votre rendez-vous approche",
        "upcoming.with": "{service} avec {clerk}",
        "upcoming.at": "à {time}",
        "upcoming.countdown": "Début dans {countdown}",
        "upcoming.hint": "Installez-vous. L'appel démarrera tout seul.",
        "waiting.title": "{clerk} va vous rejoindre",
        "waiting.hint": "Restez devant l'écran. Vous n'avez rien à faire.",
        "waiting.late": "{clerk} arrive dans un instant.",
        "waiting.reconnecting": "La connexion a été coupée. Nous rappelons {clerk}…",
        "call.connecting": "Connexion en cours…",
        "call.with": "{clerk} — {service}",
        "call.mute": "Couper le micro",
        "call.unmute": "Rallumer le micro",
        "call.camera_off": "Couper la caméra",
        "call.camera_on": "Rallumer la caméra",
        "call.hang_up": "Terminer",
        "call.confirm_question": "Voulez-vous vraiment terminer l'entretien ?",
        "call.confirm_yes": "Oui, terminer",
        "call.confirm_no": "Non, continuer",
        "call.self_view": "Vous",
        "call.muted_badge": "Micro coupé",
        "ended.title": "L'entretien est terminé",
        "ended.title_no_meeting": "Pas d'entretien aujourd'hui",
        "ended.title_interrupted": "L'entretien a été interrompu",
        "ended.thanks": "Merci de votre visite.",
        "ended.clerk_no_show": "{clerk} n'a pas pu venir. Demandez à la personne de l'accueil.",
        "ended.call_failed": "La connexion n'est pas revenue. Demandez à la personne de l'accueil.",
        "ended.cancelled": "Ce rendez-vous a été annulé. Demandez à la personne de l'accueil.",
        "ended.appointment_over": "L'heure du rendez-vous est passée. Demandez à la personne de l'accueil.",
        "ended.forget": "Vos informations ont été effacées de cette borne.",
        "out_of_service.title": "Borne momentanément indisponible.",
        "out_of_service.hint": "Adressez-vous à l'accueil.",
        "out_of_service.staff": "Pour la personne de l'accueil : le contrôle de remise à zéro entre deux visiteurs a échoué. Redémarrez la borne ; elle s'efface et se contrôle à nouveau.",
        "notice.central_unreachable": "Serveur injoignable : planning enregistré utilisé.",
        "notice.not_enrolled": "Borne non reconnue par le serveur : à ré-enrôler (service informatique).",
        "notice.schedule_unreadable": "Planning reçu illisible : ancien planning conservé.",
        "notice.appointments_skipped": "Un ou plusieurs rendez-vous illisibles ont été ignorés.",
        "notice.camera_missing": "Caméra absente : une image de remplacement est envoyée.",
        "notice.microphone_missing": "Micro absent : le conseiller n'entendra pas l'usager.",
        "notice.call_setup_failing": "L'appel n'arrive pas à démarrer : nouvel essai en cours.",
        "notice.relay_unreachable": "Relais réseau (TURN) injoignable : la borne essaie un autre chemin.",
        "notice.relay_refused": "Relais réseau (TURN) : identifiants refusés (service informatique).",
        "notice.small_screen": "Écran plus petit que 1280×720 : certains boutons peuvent être hors de portée.",
        "duration.minutes": "{minutes} min {seconds:02d} s",
        "duration.seconds": "{seconds} s",
        "control.question": "{clerk} propose de remplir le formulaire pour vous. Êtes-vous d'accord ?",
        "control.question_hint": "Vous verrez tout ce qui est fait. Vous pourrez reprendre la main à tout moment.",
        "control.accept": "Accepter",
        "control.refuse": "Refuser",
        "control.banner": "{clerk} remplit le formulaire pour vous.",
        "control.take_back": "Reprendre la main",
        "form.zoom_in": "Agrandir la page",
        "form.zoom_out": "Réduire la page",
        "keyboard.backspace": "⌫ Effacer",
        "keyboard.shift": "⇧ Maj",
        "keyboard.space": "Espace",
        "keyboard.next": "Suivant",
        "keyboard.enter": "Valider",
        "keyboard.close": "Fermer le clavier",
        "keyboard.symbols": "Symboles",
        "keyboard.letters": "Lettres",
        "keyboard.secret_hint": "Ce champ est secret. {clerk} ne voit pas ce que vous tapez.",
        "form.refused.navigation": "Cette page n'est pas autorisée pendant ce rendez-vous.",
        "form.refused.popup": "Les nouvelles fenêtres sont bloquées sur cette borne.",
        "form.refused.download": "Les téléchargements sont bloqués sur cette borne.",
        "form.refused.print": "L'impression n'est pas disponible sur cette borne.",
        "form.refused.permission": "Cette page demande un accès. La borne l'a refusé.",
        "form.refused.file_chooser": "Aucun document numérisé pour l'instant.",
        "form.refused.filesystem": "L'accès aux fichiers est bloqué sur cette borne.",
        "form.recovery.reloaded": "La page a été rechargée après un incident. Ce qui n'était pas envoyé est à saisir de nouveau.",
        "form.recovery.failed": "Le formulaire ne peut pas s'afficher pour le moment. Votre conseiller est prévenu : l'entretien continue.",
        "form.recovery.retry": "Réessayer",
        "call.documents": "Documents",
        "documents.heading": "Vos documents",
        "documents.requested": "{clerk} vous demande : {label}",
        "documents.how_to": "Posez la feuille sur la vitre du scanner, face vers le bas. Fermez le capot. Puis touchez « Scanner une page ».",
        "documents.scanning": "Le scanner lit la feuille… Ne la bougez pas.",
        "documents.check_pages": "Vérifiez vos pages. Vous pouvez en retirer ou en ajouter. Puis envoyez-les.",
        "documents.scan_flatbed": "Scanner une page",
        "documents.scan_feeder": "Scanner plusieurs feuilles",
        "documents.scan_camera": "Montrer à la caméra",
        "documents.holding": "Tenez la feuille à plat devant la caméra. Ne bougez plus jusqu'à ce qu'elle apparaisse ici.",
        "documents.error.no_page_seen": "La caméra n'a pas vu de feuille. Tenez-la à plat, bien en face. Puis réessayez.",
        "documents.page": "Page {number}",
        "documents.remove_page": "Retirer",
        "documents.clear": "Tout recommencer",
        "documents.send": "Envoyer les pages",
        "documents.close": "Fermer",
        "documents.blank_dropped": "Pages blanches retirées : {count}.",
        "documents.error.no_scanner": "Aucun scanner n'est branché. Demandez à la personne de l'accueil.",
        "documents.error.feeder_empty": "Le bac du scanner est vide. Mettez-y vos feuilles.",
        "documents.error.paper_jammed": "Une feuille est coincée. Demandez à la personne de l'accueil.",
        "documents.error.scanner_disconnected": "Le scanner ne répond plus. Vérifiez qu'il est branché.",
        "documents.error.scanner_not_responding": "Le scanner ne répond plus. Demandez à la personne de l'accueil.",
        "documents.error.source_unsupported": "Ce scanner n'a pas de bac. Posez la feuille sur la vitre.",
        "documents.error.cover_open": "Le capot du scanner est ouvert.",
        "documents.error.scanner_busy": "Le scanner est occupé. Réessayez dans un instant.",
        "documents.error.scanner_failed": "Le scanner n'a pas réussi. Réessayez.",
        "documents.error.processing_failed": "Une page n'a pas pu être préparée. Scannez-la de nouveau.",
        "documents.error.too_many_pages": "Trop de pages pour un seul envoi. Envoyez d'abord celles-ci.",
        "documents.error.outbox_full": "La borne n'a plus de place pour ce document. Rien n'a été envoyé. Prévenez la personne de l'accueil.",
        "documents.error.outbox_failed": "Le document n'a pas pu être préparé. Rien n'a été envoyé. Réessayez.",
        "documents.transfer.waiting": "{name} : en attente de {clerk}…",
        "documents.transfer.sending": "{name} : envoi en cours ({percent} %)",
        "documents.transfer.checking": "{name} : {clerk} le vérifie…",
        "documents.transfer.received": "{name} : {clerk} l'a bien reçu ✓",
        "documents.transfer.refused": "{name} : {clerk} n'a pas pris ce document.",
        "documents.transfer.failed": "{name} : l'envoi a échoué. Scannez de nouveau.",
    },
    "en": {
        "language.switch": "Français",
        "clerk.unnamed": "your advisor",
        "listen": "Listen",
        "check.title": "Can you see yourself? Can you hear me?",
        "check.hint": "Look at yourself in the picture. Touch “Try the sound”: you should hear a short tune.",
        "check.test_sound": "Try the sound",
        "check.speak": "Your microphone: speak, and the bar moves when it hears you.",
        "check.no_microphone": "There is no microphone on this kiosk. {clerk} will not hear you. Please tell the desk.",
        "volume.down": "Sound −",
        "volume.up": "Sound +",
        "volume.level": "Sound: {level} of {levels}",
        "notice.read_aloud_missing": "Read-aloud unavailable: “Listen” buttons hidden (check speech-dispatcher and the espeak-ng voice).",
        "notice.sounds_missing": "No audio output for the kiosk: sound cues are silent.",
        "text.larger": "Larger text",
        "text.smaller": "Normal text",
        "idle.welcome": "Welcome",
        "idle.today": "Today's appointments",
        "idle.none_today": "No more appointments today.",
        "idle.schedule_unknown": "The schedule is not available yet.",
        "idle.help": "For an appointment, please ask at the desk.",
        "appointment.line": "{time} — {service}",
        "upcoming.title": "Your appointment is coming up",
        "upcoming.with": "{service} with {clerk}",
        "upcoming.at": "at {time}",
        "upcoming.countdown": "Starts in {countdown}",
        "upcoming.hint": "Take a seat. The call will start by itself.",
        "waiting.title": "{clerk} will join you",
        "waiting.hint": "Stay in front of the screen. You have nothing to do.",
        "waiting.late": "{clerk} will be with you shortly.",
        "waiting.reconnecting": "The connection was cut. Calling {clerk} again…",
        "call.connecting": "Connecting…",
        "call.with": "{clerk} — {service}",
        "call.mute": "Turn mic off",
        "call.unmute": "Turn mic on",
        "call.camera_off": "Turn camera off",
        "call.camera_on": "Turn camera on",
        "call.hang_up": "End",
        "call.confirm_question": "Do you really want to end the meeting?",
        "call.confirm_yes": "Yes, end it",
        "call.confirm_no": "No, continue",
        "call.self_view": "You",
        "call.muted_badge": "Microphone off",
        "ended.title": "The meeting has ended",
        "ended.title_no_meeting": "No meeting this time",
        "ended.title_interrupted": "The meeting was interrupted",
        "ended.thanks": "Thank you for your visit.",
        "ended.clerk_no_show": "{clerk} could not come. Please ask at the desk.",
        "ended.call_failed": "The connection could not be restored. Please ask at the desk.",
        "ended.cancelled": "This appointment was cancelled. Please ask at the desk.",
        "ended.appointment_over": "The appointment time has passed. Please ask at the desk.",
        "ended.forget": "Your information has been erased from this kiosk.",
        "out_of_service.title": "This kiosk is temporarily unavailable.",
        "out_of_service.hint": "Please ask at the desk.",
        "out_of_service.staff": "For the staff: the reset check between two visitors failed. Restart the kiosk; it wipes itself and checks again.",
        "notice.central_unreachable": "Server unreachable: using the saved schedule.",
        "notice.not_enrolled": "Kiosk not recognised by the server: enrol it again (IT staff).",
        "notice.schedule_unreadable": "Unreadable schedule received: keeping the previous one.",
        "notice.appointments_skipped": "One or more unreadable appointments were ignored.",
        "notice.camera_missing": "No camera: a placeholder image is sent.",
        "notice.microphone_missing": "No microphone: the advisor will not hear the visitor.",
        "notice.call_setup_failing": "The call does not start: trying again.",
        "notice.relay_unreachable": "Network relay (TURN) unreachable: the kiosk tries another path.",
        "notice.relay_refused": "Network relay (TURN): credentials refused (IT staff).",
        "notice.small_screen": "Screen smaller than 1280×720: some buttons may be out of reach.",
        "duration.minutes": "{minutes} min {seconds:02d} s",
        "duration.seconds": "{seconds} s",
        "control.question": "{clerk} offers to fill in the form for you. Do you agree?",
        "control.question_hint": "You will see everything that is done. You can take control back at any time.",
        "control.accept": "Accept",
        "control.refuse": "Refuse",
        "control.banner": "{clerk} is filling in the form for you.",
        "control.take_back": "Take control back",
        "form.zoom_in": "Larger page",
        "form.zoom_out": "Smaller page",
        "keyboard.backspace": "⌫ Delete",
        "keyboard.shift": "⇧ Shift",
        "keyboard.space": "Space",
        "keyboard.next": "Next",
        "keyboard.enter": "Enter",
        "keyboard.close": "Close keyboard",
        "keyboard.symbols": "Symbols",
        "keyboard.letters": "Letters",
        "keyboard.secret_hint": "This field is secret. {clerk} cannot see what you type.",
        "form.refused.navigation": "This page is not allowed during this appointment.",
        "form.refused.popup": "New windows are blocked on this kiosk.",
        "form.refused.download": "Downloads are blocked on this kiosk.",
        "form.refused.print": "Printing is not available on this kiosk.",
        "form.refused.permission": "This page asks for an access. The kiosk refused it.",
        "form.refused.file_chooser": "No scanned document yet.",
        "form.refused.filesystem": "File access is blocked on this kiosk.",
        "form.recovery.reloaded": "The page was reloaded after a problem. Anything not yet sent must be entered again.",
        "form.recovery.failed": "The form cannot be shown for now. Your adviser knows: the appointment goes on.",
        "form.recovery.retry": "Try again",
        "call.documents": "Documents",
        "documents.heading": "Your documents",
        "documents.requested": "{clerk} asks for: {label}",
        "documents.how_to": "Lay the sheet face down on the scanner glass. Close the lid. Then touch “Scan a page”.",
        "documents.scanning": "Scanning… Please do not move the sheet.",
        "documents.check_pages": "Check your pages. You can remove some or add more. Then send them.",
        "documents.scan_flatbed": "Scan a page",
        "documents.scan_feeder": "Scan several sheets",
        "documents.scan_camera": "Show it to the camera",
        "documents.holding": "Hold the sheet flat in front of the camera. Keep still until it appears here.",
        "documents.error.no_page_seen": "The camera did not see a sheet. Hold it flat, facing the camera. Then try again.",
        "documents.page": "Page {number}",
        "documents.remove_page": "Remove",
        "documents.clear": "Start over",
        "documents.send": "Send the pages",
        "documents.close": "Close",
        "documents.blank_dropped": "Blank pages left out: {count}.",
        "documents.error.no_scanner": "No scanner is connected. Please ask at the desk.",
        "documents.error.feeder_empty": "The scanner's tray is empty. Put your sheets in it.",
        "documents.error.paper_jammed": "A sheet is stuck. Please ask at the desk to remove it.",
        "documents.error.scanner_disconnected": "The scanner stopped answering. Check that it is plugged in.",
        "documents.error.scanner_not_responding": "The scanner stopped answering. Please ask at the desk.",
        "documents.error.source_unsupported": "This scanner has no tray. Lay the sheet on the glass.",
        "documents.error.cover_open": "The scanner's lid is open.",
        "documents.error.scanner_busy": "The scanner is busy. Try again in a moment.",
        "documents.error.scanner_failed": "The scanner did not manage. Please try again.",
        "documents.error.processing_failed": "A page could not be prepared. Please scan it again.",
        "documents.error.too_many_pages": "Too many pages for one sending: send these first.",
        "documents.error.outbox_full": "The kiosk has no room left to keep this document. Nothing was sent. Please tell the desk.",
        "documents.error.outbox_failed": "The document could not be prepared. Nothing was sent. Please try again.",
        "documents.transfer.waiting": "{name}: waiting for {clerk}…",
        "documents.transfer.sending": "{name}: sending ({percent} %)",
        "documents.transfer.checking": "{name}: {clerk} is checking it…",
        "documents.transfer.received": "{name}: {clerk} has received it ✓",
        "documents.transfer.refused": "{name}: {clerk} did not take this document.",
        "documents.transfer.failed": "{name}: sending failed. Please scan again.",
    },
}

_PLACEHOLDER = re.compile(r"(\{[^}]*\})")


def french_typography(text: str) -> str:
    """French typesetting outside {placeholders}: typographic apostrophes, a no-break space before
    « : » and « % » and inside « », a narrow one before « ; ! ? » (so that a line never starts with a
    colon or a question mark)."""
    parts = _PLACEHOLDER.split(text)
    for i in range(0, len(parts), 2):
        part = parts[i].replace("'", "\u2019")
        part = re.sub(r" ([:»%])", "\u00a0\\1", part)
        part = re.sub(r" ([;!?])", "\u202f\\1", part)
        parts[i] = part.replace("« ", "«\u00a0")
    return "".join(parts)


CATALOGUE["fr"] = {key: french_typography(text) for key, text in CATALOGUE["fr"].items()}

DAYS = {
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}
MONTHS = {
    "fr": [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}


class Translator:
    def __init__(self, language: str = "fr") -> None:
        if language not in CATALOGUE:
            raise ValueError(f"unsupported language {language!r}")
        self.language = language
        # The clerk by name (« Mme Martin »), not "your advisor": set by the window for each session.
        self.clerk = ""

    def __call__(self, key: str, **values: object) -> str:
        text = CATALOGUE[self.language].get(key)
        if text is None:  # a missing translation: French rather than nothing (or a crash)
            log.error("no %s text for %r: shown in French", self.language, key)
            text = CATALOGUE["fr"][key]
        if "{clerk}" in text and not values.get("clerk"):
            values["clerk"] = self.clerk or CATALOGUE[self.language]["clerk.unnamed"]
        result = text.format(**values)
        return result[:1].upper() + result[1:] if text.startswith("{clerk}") else result

    def other_language(self) -> str:
        return "en" if self.language == "fr" else "fr"

    def time(self, moment: datetime) -> str:
        local = moment.astimezone()
        return f"{local.hour}h{local.minute:02d}" if self.language == "fr" else local.strftime("%H:%M")

    def date(self, moment: datetime) -> str:
        local = moment.astimezone()
        day, month = DAYS[self.language][local.weekday()], MONTHS[self.language][local.month - 1]
        if self.language == "fr":
            return f"{day} {local.day} {month} {local.year}".capitalize()
        return f"{day} {local.day} {month} {local.year}"

    def duration(self, seconds: float) -> str:
        total = max(0, int(seconds))
        if total >= 60:
            return self("duration.minutes", minutes=total // 60, seconds=total % 60)
        return self("duration.seconds", seconds=total)
